//! fqdnpath
