//! Guessing throttles: N parallel attempts never pass more than the limit.
