//! The local terminal of an attached session (`paas run`, `paas ps:exec`): raw mode while the
//! session runs, so every key (Ctrl-C included) goes to the remote process and the remote
//! terminal does the echoing and line editing, and the window size to hand on.

use std::io;

/// The terminal's settings before raw mode; put back when dropped, so every way out of a
/// session (its end, an error, a panic) leaves the terminal as it was.
pub struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    /// Puts the terminal on stdin into raw mode.
    pub fn enable() -> io::Result<RawMode> {
        // SAFETY: termios is plain data, filled in by tcgetattr before use.
        let mut settings: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 and a valid pointer to a termios.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut settings) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let saved = settings;
        // SAFETY: a valid pointer to a termios read from the terminal.
        unsafe { libc::cfmakeraw(&mut settings) };
        // SAFETY: fd 0 and a valid termios.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &settings) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: fd 0 and the termios read from it in `enable`.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved) };
    }
}

/// The terminal's size as (columns, rows), if stdin is a terminal that knows it.
pub fn window_size() -> Option<(u16, u16)> {
    // SAFETY: winsize is plain data, filled in by the ioctl.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize through the valid pointer.
    let done = unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut size) };
    (done == 0 && size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}
