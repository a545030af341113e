//! accord-testkit
