//! The contract every Store implementation must meet.
