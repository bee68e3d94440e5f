//! The signed-in member and CSRF-checked forms of the pages, as extractors.
