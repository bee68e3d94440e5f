//! Sandbox ownership: nobody reads or changes what they do not own.
