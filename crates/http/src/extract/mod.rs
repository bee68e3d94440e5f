//! Extractors whose rejection is our error, in the wire format of the endpoint that uses them:
//! a request that cannot be read is refused where it enters, once.

pub mod bearer;
pub mod client;
pub mod form;
pub mod session;
