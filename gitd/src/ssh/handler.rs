//! One SSH connection: authentication, then per session channel at most one exec request.
//! Every refusal is a one-line `paas: …` on the channel's stderr, exit status 1, EOF and
//! close, with nothing spawned.

use std::collections::HashMap;
use std::net::SocketAddr;

use paas_api::git_command::parse_git_command;
use russh::keys::ssh_key::{HashAlg, PublicKey};
use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId, ChannelWriteHalf, CryptoVec, Pty};
use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::sync::oneshot;

use super::git::{self, GitRequest};
use crate::db::queries::{self, UserRow};
use crate::state::SharedState;

/// Session channels one connection may have open at once.
const MAX_CHANNELS: usize = 4;
/// The only environment variable taken from the client, and how long its value may be.
const GIT_PROTOCOL: &str = "GIT_PROTOCOL";
const MAX_GIT_PROTOCOL_BYTES: usize = 128;

pub struct Connection {
    state: SharedState,
    peer: Option<SocketAddr>,
    user: Option<UserRow>,
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
    pub fn new(state: SharedState, peer: Option<SocketAddr>) -> Self {
        Connection {
            state,
            peer,
            user: None,
            channels: HashMap::new(),
        }
    }

    async fn user_for_key(&self, key: &PublicKey) -> Option<UserRow> {
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let found = {
            let fingerprint = fingerprint.clone();
            self.state
                .db
                .call(move |conn| queries::user_by_key_fingerprint(conn, &fingerprint))
                .await
        };
        match found {
            Ok(Some(user)) => Some(user),
            Ok(None) => {
                tracing::info!(peer = ?self.peer, %fingerprint, "SSH key not registered");
                None
            }
            Err(err) => {
                tracing::error!(error = %err, "database error during SSH authentication");
                None
            }
        }
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
        self.user = self.user_for_key(key).await;
        Ok(match &self.user {
            Some(user) => {
                tracing::info!(peer = ?self.peer, user = %user.username, "SSH login");
                Auth::Accept
            }
            None => Auth::reject(),
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        if self.user.is_none() || self.channels.len() >= MAX_CHANNELS {
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
        let Some(user) = self.user.clone() else {
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
        let app = {
            let user = user.clone();
            let name = command.app.clone();
            self.state
                .db
                .call(move |conn| queries::app_for_user(conn, &user, &name))
                .await
        };
        let app = match app {
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
