//! placeholder, replaced by the reads tests
