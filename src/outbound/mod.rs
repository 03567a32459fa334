//! The outbound address guard (SSRF). Filled in by the routing work.
