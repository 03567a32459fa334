//! The Quality Gate. Filled in by the routing work.
