//! One SSH connection: authentication, then per session channel at most one exec request.
//! Every refusal is a one-line `paas: …` on the channel's stderr, exit status 1, EOF and
//! close, with nothing spawned.

use std::collections::HashMap;
use std::net::SocketAddr;

use paas_api::git_command::parse_git_command;
use russh::keys::ssh_key::PublicKey;
use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId, ChannelWriteHalf, CryptoVec, Pty};
use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::sync::oneshot;

use super::access::{self, Login};
use super::git::{self, GitRequest};
use crate::state::SharedState;
use crate::store::UserRow;

/// Session channels one connection may have open at once.
const MAX_CHANNELS: usize = 4;
/// The only environment variable taken from the client, and how long its value may be.
const GIT_PROTOCOL: &str = "GIT_PROTOCOL";
const MAX_GIT_PROTOCOL_BYTES: usize = 128;

pub struct Connection {
    state: SharedState,
    peer: SocketAddr,
    /// The key and user this connection authenticated as.
    login: Option<Login>,
    /// Tells the connection's guard once authentication succeeded.
    logged_in: Option<oneshot::Sender<Login>>,
    channels: HashMap<ChannelId, ChannelState>,
}

struct ChannelState {
    /// Handed to the git task when the exec starts.
    writer: Option<ChannelWriteHalf<Msg>>,
    git_protocol: Option<String>,
    stdin: Stdin,
    /// Dropped with the channel (or the connection): tells the git task the client is gone.
    _hangup: oneshot::Sender<()>,
    hangup: Option<oneshot::Receiver<()>>,
}

enum Stdin {
    /// No command runs yet.
    NotStarted,
    /// The command is starting; its stdin arrives before it can have said anything.
    Pending(oneshot::Receiver<ChildStdin>),
    Open(ChildStdin),
    Closed,
}

impl Connection {
    pub fn new(state: SharedState, peer: SocketAddr, logged_in: oneshot::Sender<Login>) -> Self {
        Connection {
            state,
            peer,
            login: None,
            logged_in: Some(logged_in),
            channels: HashMap::new(),
        }
    }

    async fn user_for_key(&self, key: &PublicKey) -> Option<UserRow> {
        let fingerprint = access::fingerprint(key);
        let user = access::user_for_key(&self.state, &fingerprint).await;
        if user.is_none() {
            tracing::info!(peer = %self.peer, %fingerprint, "SSH key not registered");
        }
        user
    }
}

/// Ends a channel with a one-line reason, without running anything.
fn refuse(session: &mut Session, channel: ChannelId, reason: &str) -> Result<(), russh::Error> {
    let line = format!("paas: {reason}\n");
    session.extended_data(channel, 1, CryptoVec::from(line.into_bytes()))?;
    session.exit_status_request(channel, 1)?;
    session.eof(channel)?;
    session.close(channel)
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        key: &PublicKey,
    ) -> Result<Auth, Self::Error> {
        Ok(match self.user_for_key(key).await {
            Some(_) => Auth::Accept,
            None => Auth::reject(),
        })
    }

    async fn auth_publickey(&mut self, _user: &str, key: &PublicKey) -> Result<Auth, Self::Error> {
        Ok(match self.user_for_key(key).await {
            Some(user) => {
                tracing::info!(peer = %self.peer, user = %user.username, "SSH login");
                self.login = Some(Login {
                    fingerprint: access::fingerprint(key),
                    user_id: user.id,
                });
                Auth::Accept
            }
            None => Auth::reject(),
        })
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        if let (Some(login), Some(logged_in)) = (&self.login, self.logged_in.take()) {
            let _ = logged_in.send(login.clone());
        }
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        if self.login.is_none() || self.channels.len() >= MAX_CHANNELS {
            return Ok(false);
        }
        let id = channel.id();
        // Input arrives through `data`; the read half is not needed.
        let (_, writer) = channel.split();
        let (hangup_sender, hangup) = oneshot::channel();
        self.channels.insert(
            id,
            ChannelState {
                writer: Some(writer),
                git_protocol: None,
                stdin: Stdin::NotStarted,
                _hangup: hangup_sender,
                hangup: Some(hangup),
            },
        );
        Ok(true)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let acceptable = name == GIT_PROTOCOL
            && value.len() <= MAX_GIT_PROTOCOL_BYTES
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=:,.-_".contains(&b));
        match self.channels.get_mut(&channel) {
            Some(state) if acceptable => {
                state.git_protocol = Some(value.to_owned());
                session.channel_success(channel)
            }
            _ => session.channel_failure(channel),
        }
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        refuse(
            session,
            channel,
            "no shell here; this server only serves `git push` and `git clone`",
        )
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        refuse(
            session,
            channel,
            &format!("subsystem {name:?} is not available; this server only serves git"),
        )
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        command: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(login) = self.login.clone() else {
            return session.channel_failure(channel);
        };
        let Some(state) = self.channels.get_mut(&channel) else {
            return session.channel_failure(channel);
        };
        let (Some(writer), Some(hangup)) = (state.writer.take(), state.hangup.take()) else {
            // One command per channel.
            return session.channel_failure(channel);
        };
        session.channel_success(channel)?;
        // The user as of now: the key may have been removed, the admin flag changed.
        let Some(user) = access::current_user(&self.state, &login).await else {
            return refuse(session, channel, "your access was revoked");
        };
        let command = match parse_git_command(command) {
            Ok(command) => command,
            Err(err) => {
                tracing::info!(
                    user = %user.username,
                    command = %String::from_utf8_lossy(command).escape_debug(),
                    "SSH command refused"
                );
                return refuse(session, channel, &err.to_string());
            }
        };
        let app = match access::app_for(&self.state, &user, &command.app).await {
            Ok(Some(app)) => app,
            Ok(None) => {
                return refuse(
                    session,
                    channel,
                    &format!("Couldn't find that app: {}", command.app),
                );
            }
            Err(err) => {
                tracing::error!(error = %err, "database error on an SSH command");
                return refuse(session, channel, "internal error; see the paas-gitd log");
            }
        };
        tracing::info!(
            user = %user.username,
            app = %app.name,
            service = command.service.subcommand(),
            "git over SSH"
        );
        let (stdin_sender, stdin) = oneshot::channel();
        state.stdin = Stdin::Pending(stdin);
        tokio::spawn(git::serve(
            self.state.clone(),
            GitRequest {
                service: command.service,
                app,
                user,
                login,
                git_protocol: state.git_protocol.clone(),
            },
            writer,
            stdin_sender,
            hangup,
        ));
        Ok(())
    }

    /// Awaiting the write to git's stdin holds this connection's reads back, so a client
    /// sending faster than git reads is slowed by TCP, and a pack never piles up in memory.
    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(state) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        if let Stdin::Pending(pending) = &mut state.stdin {
            // git speaks first, so a well-behaved client sends nothing before the command
            // runs; input that early is dropped with the command's stdin.
            state.stdin = match pending.try_recv() {
                Ok(stdin) => Stdin::Open(stdin),
                Err(_) => Stdin::Closed,
            };
        }
        if let Stdin::Open(stdin) = &mut state.stdin
            && stdin.write_all(data).await.is_err()
        {
            state.stdin = Stdin::Closed;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(state) = self.channels.get_mut(&channel) {
            state.stdin = Stdin::Closed;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }
}
