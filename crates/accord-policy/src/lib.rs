//! accord-policy
