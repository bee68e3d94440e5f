//! Transport limits: timeouts, connection caps and bounded bodies.
