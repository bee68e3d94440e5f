//! Enforcement through every gateway style: the route a request names cannot be chosen by the client.
