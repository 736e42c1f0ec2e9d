"""The auth rules (pure): both profiles' decisions and the primitives they share."""
