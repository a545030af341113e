//! accord-gateway
