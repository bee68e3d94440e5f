//! Extractors whose rejection is our error, in the wire format of the endpoint that uses them:
//! a request that cannot be read is refused where it enters, once.

pub mod bearer;
pub mod client;
pub mod form;
pub mod session;

/// Form and JSON bodies larger than this are refused with 413 before any handler runs.
pub const MAX_BODY: usize = 64 * 1024;

/// How much of a body over [`MAX_BODY`] is read and thrown away before the 413 goes out. An
/// HTTP/1.1 client sends its whole body before it reads the answer; a server that closes with
/// unread bytes makes the kernel reset the connection, and the reset destroys the answer at the
/// client. Past this much the connection is closed anyway (the cost of draining is bounded).
pub const MAX_DRAIN: usize = 8 * 1024 * 1024;
