//! Invariants over every route: a GET changes nothing stored; portal actions need the right role.
