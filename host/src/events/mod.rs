//! What happens when events fire. So far: the execution history, which
//! records every execution durably with group commits ([`history`]).
//! Triggers, the queue and the dispatcher come with the events issue.

pub mod history;
