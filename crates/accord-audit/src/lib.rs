//! accord-audit
