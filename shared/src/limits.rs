//! Request limits. The widget checks them before sending and the server enforces them,
//! so a student learns about a too-long message before it leaves the page.

/// Longest access code accepted (anything longer cannot be a code and is refused early).
pub const MAX_ACCESS_CODE_CHARS: usize = 128;
/// Shortest access code a teacher may configure.
pub const MIN_ACCESS_CODE_CHARS: usize = 6;
/// Longest display name a student may give.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Most messages (history included) in one chat request.
pub const MAX_MESSAGES: usize = 40;
/// Longest single message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 8_000;
/// Most characters over all messages of one request.
pub const MAX_TOTAL_CHARS: usize = 48_000;
/// Largest request body the server reads, in bytes (413 `too_large` beyond).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Longest conversation id (the widget makes UUID-like ids).
pub const MAX_CONVERSATION_ID_CHARS: usize = 64;
/// Most conversation starters a class may have (more would crowd the empty chat).
pub const MAX_STARTERS: usize = 4;
/// Longest conversation starter, in characters: a suggestion, not a prompt.
pub const MAX_STARTER_CHARS: usize = 200;
