//! The providers catalogue: every service and resource type tagd knows.
//!
//! One static table serves all five APIs, so a type added here is taggable through TMS
//! and visible to the per-service adapters alike. Whether a type is global decides
//! whether TMS requires a `project_id` for it, and the per-type limit bounds the tags
//! one resource may carry, whatever API writes them.

/// The tag limit most Huawei Cloud services document for one resource.
pub const DEFAULT_TAGS_PER_RESOURCE: usize = 20;

/// One resource type of a provider (cloud service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// The case-sensitive name used on the wire (`disk`, `vpcs`, ...).
    pub name: &'static str,
    pub display_name: &'static str,
    /// Global types live at domain level; regional ones belong to a project.
    pub global: bool,
    /// How many tags one resource of this type may carry.
    pub tag_limit: usize,
}

/// A cloud service and the resource types it lets TMS tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    pub name: &'static str,
    pub display_name: &'static str,
    pub resource_types: &'static [ResourceType],
}

const fn regional(name: &'static str, display_name: &'static str) -> ResourceType {
    ResourceType {
        name,
        display_name,
        global: false,
        tag_limit: DEFAULT_TAGS_PER_RESOURCE,
    }
}

const fn global(name: &'static str, display_name: &'static str) -> ResourceType {
    ResourceType {
        name,
        display_name,
        global: true,
        tag_limit: DEFAULT_TAGS_PER_RESOURCE,
    }
}

/// Resource type of Workspace desktops (seed 000).
pub const WORKSPACE_DESKTOP: &str = "workspace-desktop";
/// Resource type of DataArts Fabric workspaces (seed 001).
pub const FABRIC_WORKSPACE: &str = "fabric-workspace";
/// Resource type of RDS DB instances (seed 003).
pub const RDS_INSTANCE: &str = "rds";
/// Resource type of DIS streams (seed 004).
pub const DIS_STREAM: &str = "dis";

/// Every provider tagd serves, in the order `GET /v1.0/tms/providers` lists them.
pub static PROVIDERS: &[Provider] = &[
    Provider {
        name: "ecs",
        display_name: "Elastic Cloud Server",
        resource_types: &[regional("ecs", "ECS")],
    },
    Provider {
        name: "as",
        display_name: "Auto Scaling",
        resource_types: &[regional("scaling_group", "Scaling Group")],
    },
    Provider {
        name: "ims",
        display_name: "Image Management Service",
        resource_types: &[regional("images", "Image")],
    },
    Provider {
        name: "evs",
        display_name: "Elastic Volume Service",
        resource_types: &[regional("disk", "Disk")],
    },
    Provider {
        name: "vpc",
        display_name: "Virtual Private Cloud",
        resource_types: &[
            regional("vpcs", "VPC"),
            // The TMS page's own example request tags a "vpc"; accept that name too.
            regional("vpc", "VPC (as named in the TMS examples)"),
            regional("security-groups", "Security Group"),
            regional("shared_bandwidth", "Shared Bandwidth"),
            regional("eip", "Elastic IP"),
        ],
    },
    Provider {
        name: "cdn",
        display_name: "Content Delivery Network",
        resource_types: &[global("cdn", "CDN Domain")],
    },
    Provider {
        name: "workspace",
        display_name: "Workspace",
        resource_types: &[regional(WORKSPACE_DESKTOP, "Desktop")],
    },
    Provider {
        name: "dataartsfabric",
        display_name: "DataArts Fabric",
        resource_types: &[regional(FABRIC_WORKSPACE, "Workspace")],
    },
    Provider {
        name: "rds",
        display_name: "Relational Database Service",
        resource_types: &[regional(RDS_INSTANCE, "DB Instance")],
    },
    Provider {
        name: "dis",
        display_name: "Data Ingestion Service",
        resource_types: &[regional(DIS_STREAM, "Stream")],
    },
];

/// Looks a resource type up by its case-sensitive wire name.
pub fn resource_type(name: &str) -> Option<&'static ResourceType> {
    PROVIDERS
        .iter()
        .flat_map(|p| p.resource_types.iter())
        .find(|t| t.name == name)
}

/// Looks a provider up by name.
pub fn provider(name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_type_name_is_unique() {
        let mut names: Vec<_> = PROVIDERS
            .iter()
            .flat_map(|p| p.resource_types.iter().map(|t| t.name))
            .collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all);
    }

    #[test]
    fn lookups_are_case_sensitive() {
        assert!(resource_type("disk").is_some());
        assert!(resource_type("Disk").is_none());
        assert!(resource_type("cdn").is_some_and(|t| t.global));
        assert!(resource_type("vpcs").is_some_and(|t| !t.global));
    }
}
