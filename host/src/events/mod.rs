//! What happens when events fire. So far: the execution history, which
//! records every execution durably with group commits ([`history`]), and
//! the triggers plugins declare, checked at deploy ([`trigger`]). The queue,
//! dispatcher and scheduler come with the events issue.

pub mod history;
pub mod trigger;
