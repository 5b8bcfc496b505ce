//! local runner
