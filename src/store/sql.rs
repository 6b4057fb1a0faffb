//! The SQL both backends share: the `WHERE` clauses of resource queries and tag
//! listings, written once and printed with each database's placeholders.
//!
//! Both schemas hold the same tables (a test compares them), so a query differs between
//! SQLite and PostgreSQL only in how parameters are numbered and in the name of the
//! substring function. Keeping the clauses here means a new query operator cannot
//! behave differently on the two backends.
//!
//! Text containing NUL never matches: no validated key, value, id or name holds one,
//! and PostgreSQL cannot even receive it as a parameter. Such a condition is printed
//! as `FALSE`, so both backends answer it the same way.

use crate::core::query::{ResourceQuery, TagMatch, TagScope};

/// How a database spells parameters and substring search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `?` placeholders, `instr(haystack, needle)`.
    Sqlite,
    /// `$1, $2, ...` placeholders, `strpos(haystack, needle)`.
    Postgres,
}

/// One parameter of a built query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// Accumulates parameters while clauses are printed, so each placeholder is numbered
/// in the order the database will see it.
#[derive(Debug)]
pub(crate) struct SqlBuilder {
    dialect: Dialect,
    params: Vec<Param>,
}

/// Whether `s` could be stored at all (see the module docs).
pub(crate) fn storable(s: &str) -> bool {
    !s.contains('\0')
}

impl SqlBuilder {
    pub(crate) fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            params: Vec::new(),
        }
    }

    pub(crate) fn params(&self) -> &[Param] {
        &self.params
    }

    /// Adds a parameter and returns its placeholder.
    pub(crate) fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        match self.dialect {
            Dialect::Sqlite => "?".to_owned(),
            Dialect::Postgres => format!("${}", self.params.len()),
        }
    }

    pub(crate) fn text(&mut self, s: &str) -> String {
        self.bind(Param::Text(s.to_owned()))
    }

    pub(crate) fn int(&mut self, i: i64) -> String {
        self.bind(Param::Int(i))
    }

    /// `(p1, p2, ...)` for the storable members of `items`, or `None` if none is.
    fn list(&mut self, items: &[String]) -> Option<String> {
        let placeholders: Vec<String> = items
            .iter()
            .filter(|s| storable(s))
            .map(|s| self.text(s))
            .collect();
        (!placeholders.is_empty()).then(|| format!("({})", placeholders.join(", ")))
    }

    /// `haystack` contains `needle` (a literal substring, no pattern characters).
    fn contains(&mut self, haystack: &str, needle: &str) -> String {
        if !storable(needle) {
            return "FALSE".to_owned();
        }
        let needle = self.text(needle);
        match self.dialect {
            Dialect::Sqlite => format!("instr({haystack}, {needle}) > 0"),
            Dialect::Postgres => format!("strpos({haystack}, {needle}) > 0"),
        }
    }

    /// `column = value`.
    pub(crate) fn equals(&mut self, column: &str, value: &str) -> String {
        if !storable(value) {
            return "FALSE".to_owned();
        }
        let value = self.text(value);
        format!("{column} = {value}")
    }

    /// `column > after`. A stored string (never holding NUL) sorts after `a\0...`
    /// exactly when it sorts after `a`, so the bound is cut at its first NUL.
    pub(crate) fn after(&mut self, column: &str, after: &str) -> String {
        let bound = after.split('\0').next().unwrap_or_default();
        let bound = self.text(bound);
        format!("{column} > {bound}")
    }

    /// `EXISTS` a row of `table` (`tags` or `sys_tags`) of `r` matching `m`.
    ///
    /// On PostgreSQL a user tag also names its domain: the planner may then drive the
    /// query from the `(domain_id, key, value, rid)` index, the matching tags of the
    /// caller's domain, rather than scan every tenant's tags (D85). SQLite leaves the
    /// column empty and answers these from its tag index.
    fn row_exists(&mut self, table: &str, m: &TagMatch) -> String {
        if !storable(&m.key) {
            return "FALSE".to_owned();
        }
        let key = self.text(&m.key);
        let domain = if table == "tags" && self.dialect == Dialect::Postgres {
            " AND t.domain_id = r.domain_id"
        } else {
            ""
        };
        if m.values.is_empty() {
            return format!(
                "EXISTS (SELECT 1 FROM {table} t WHERE t.rid = r.rid{domain} AND t.key = {key})"
            );
        }
        match self.list(&m.values) {
            Some(values) => format!(
                "EXISTS (SELECT 1 FROM {table} t WHERE t.rid = r.rid{domain} AND t.key = {key} AND t.value IN {values})"
            ),
            None => "FALSE".to_owned(),
        }
    }

    fn joined(&mut self, matches: &[TagMatch], op: &str) -> String {
        matches
            .iter()
            .map(|m| self.row_exists("tags", m))
            .collect::<Vec<_>>()
            .join(op)
    }

    /// The `WHERE` clause of a resource query, over `resources r`.
    pub(crate) fn query_where(&mut self, q: &ResourceQuery) -> String {
        let mut clauses = self.scope_clauses(&q.domain_id, &q.projects, &q.resource_types);
        if q.without_any_tag {
            clauses.push("NOT EXISTS (SELECT 1 FROM tags t WHERE t.rid = r.rid)".to_owned());
        } else {
            for m in &q.all {
                clauses.push(self.row_exists("tags", m));
            }
            if !q.any.is_empty() {
                clauses.push(format!("({})", self.joined(&q.any, " OR ")));
            }
            if !q.not_all.is_empty() {
                clauses.push(format!("NOT ({})", self.joined(&q.not_all, " AND ")));
            }
            if !q.none.is_empty() {
                clauses.push(format!("NOT ({})", self.joined(&q.none, " OR ")));
            }
        }
        if let Some(name) = &q.name_contains {
            clauses.push(self.contains("r.name", name));
        }
        if let Some(name) = &q.name_exact {
            clauses.push(self.equals("r.name", name));
        }
        if let Some(id) = &q.id_exact {
            clauses.push(self.equals("r.resource_id", id));
        }
        if let Some(id) = &q.id_contains {
            clauses.push(self.contains("r.resource_id", id));
        }
        for m in &q.sys_all {
            clauses.push(self.row_exists("sys_tags", m));
        }
        clauses.join(" AND ")
    }

    /// The `WHERE` clause of a tag listing, over `tags t JOIN resources r`.
    pub(crate) fn scope_where(&mut self, scope: &TagScope) -> String {
        self.scope_clauses(&scope.domain_id, &scope.projects, &scope.resource_types)
            .join(" AND ")
    }

    /// The conditions every query and listing starts from, over `resources r`: the
    /// domain, the projects (none listed matches nothing), and the resource types if
    /// any are listed.
    fn scope_clauses(
        &mut self,
        domain_id: &str,
        projects: &[String],
        resource_types: &[String],
    ) -> Vec<String> {
        let mut clauses = vec![self.equals("r.domain_id", domain_id)];
        clauses.push(match self.list(projects) {
            Some(list) => format!("r.project_id IN {list}"),
            None => "FALSE".to_owned(),
        });
        if !resource_types.is_empty() {
            clauses.push(match self.list(resource_types) {
                Some(list) => format!("r.resource_type IN {list}"),
                None => "FALSE".to_owned(),
            });
        }
        clauses
    }
}

/// Resources and user tags per project, for both backends (the casts make PostgreSQL's
/// `SUM` an integer): one pass over each table, grouped; what a metrics scrape costs
/// when no tag index answers it.
pub const PROJECT_TOTALS_SQL: &str = "SELECT r.domain_id, r.project_id, CAST(COUNT(*) AS BIGINT),
        CAST(COALESCE(SUM(t.n), 0) AS BIGINT)
     FROM resources r LEFT JOIN (SELECT rid, COUNT(*) AS n FROM tags GROUP BY rid) t ON t.rid = r.rid
     GROUP BY r.domain_id, r.project_id ORDER BY r.domain_id, r.project_id";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_dialect_and_the_order_of_binding() {
        let q = ResourceQuery {
            domain_id: "d".into(),
            projects: vec!["p1".into(), "p2".into()],
            all: vec![TagMatch {
                key: "env".into(),
                values: vec!["prod".into()],
            }],
            ..ResourceQuery::default()
        };
        let mut pg = SqlBuilder::new(Dialect::Postgres);
        let pg_where = pg.query_where(&q);
        assert_eq!(
            pg_where,
            "r.domain_id = $1 AND r.project_id IN ($2, $3) AND EXISTS (SELECT 1 FROM tags t WHERE t.rid = r.rid AND t.domain_id = r.domain_id AND t.key = $4 AND t.value IN ($5))"
        );
        let mut lite = SqlBuilder::new(Dialect::Sqlite);
        assert_eq!(
            lite.query_where(&q),
            "r.domain_id = ? AND r.project_id IN (?, ?) AND EXISTS (SELECT 1 FROM tags t WHERE t.rid = r.rid AND t.key = ? AND t.value IN (?))"
        );
        assert_eq!(pg.params(), lite.params());
    }

    #[test]
    fn text_with_nul_matches_nothing_and_binds_nothing() {
        let q = ResourceQuery {
            domain_id: "d".into(),
            projects: vec!["p\0".into()],
            name_contains: Some("a\0b".into()),
            any: vec![TagMatch {
                key: "k".into(),
                values: vec!["v\0".into()],
            }],
            ..ResourceQuery::default()
        };
        let mut b = SqlBuilder::new(Dialect::Postgres);
        let clause = b.query_where(&q);
        assert!(b.params().iter().all(|p| match p {
            Param::Text(s) => storable(s),
            Param::Int(_) => true,
        }));
        assert_eq!(clause.matches("FALSE").count(), 3, "{clause}");
        let mut b = SqlBuilder::new(Dialect::Postgres);
        assert_eq!(b.after("t.key", "ab\0c"), "t.key > $1");
        assert_eq!(b.params(), &[Param::Text("ab".into())]);
    }
}
