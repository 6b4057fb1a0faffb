//! What the benchmark programs share: the W5 data scheme (the same in
//! bench/moto_peer.py) and how a latency quantile is read. Included by path from
//! examples/load.rs and examples/sqlite_ceiling.rs.

/// Resources per W5 data call (AWS allows 20 per tagging call).
pub const M1_RESOURCES: u64 = 20;

const ENVS: [&str; 4] = ["prod", "dev", "test", "staging"];

/// The five tags of W5 data call `c`: env and team spread so that env=prod AND team=t3
/// matches calls with c % 4 == 0 and (c / 4) % 10 == 3.
pub fn m2_tags(c: u64) -> [(String, String); 5] {
    [
        ("env".into(), ENVS[(c % 4) as usize].into()),
        ("team".into(), format!("t{}", (c / 4) % 10)),
        ("owner".into(), format!("u{c}")),
        ("cost-center".into(), format!("cc{}", c % 100)),
        (format!("k{}", c % 50), format!("v{}", c % 10)),
    ]
}

/// Resources matching env=prod AND team=t3 among `resources` loaded by W5 data calls.
pub fn m2_expected(resources: u64) -> u64 {
    (0..resources / M1_RESOURCES)
        .filter(|c| c % 4 == 0 && (c / 4) % 10 == 3)
        .count() as u64
        * M1_RESOURCES
}

/// The `q` quantile of sorted microsecond latencies, in milliseconds (nearest rank).
pub fn quantile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}
