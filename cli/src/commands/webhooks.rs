//! `webhooks`, `webhooks:add`, `webhooks:remove` and `webhooks:deliveries`: the URLs an app's
//! events are posted to, signed with a secret shown once, and the log of those posts.

use clap::Args;
use paas_api::webhooks::{
    AttemptNext, AttemptResult, CreateWebhookRequest, CreatedWebhook, DeliveriesQuery,
    DeliveryAttempt, Webhook, WebhookSecret, WebhookUrl, parse_include,
};

use super::Context;
use crate::output::{Style, action, key_values, print_json, table, timestamp};
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// Where to post the events (http:// or https://)
    pub url: String,
    /// Events to post, comma-separated: deploy, crash, rollback, scale, or single kinds such
    /// as deploy.failed or instance.crash_loop
    #[arg(short, long, value_name = "EVENTS")]
    pub include: String,
    /// The key deliveries are signed with [default: one made by the server]
    #[arg(long, value_name = "SECRET")]
    pub secret: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// Webhook id (see `paas webhooks`)
    pub id: u64,
}

#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// Only the attempts of this webhook
    #[arg(long, value_name = "ID")]
    pub webhook: Option<u64>,
    /// How many attempts to show, newest first
    #[arg(short = 'n', long, value_name = "N", default_value_t = 20)]
    pub num: u32,
    #[command(flatten)]
    pub json: JsonArg,
}

pub fn list(ctx: &Context, ListArgs { app, json }: &ListArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let webhooks = ctx.client()?.webhooks(&name)?;
    if json.json {
        return print_json(&webhooks);
    }
    print!("{}", render_list(&name, &webhooks, Style::stdout()));
    Ok(())
}

fn events_text(webhook: &Webhook) -> String {
    webhook
        .events
        .iter()
        .map(|kind| kind.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn render_list(app: &str, webhooks: &[Webhook], style: Style) -> String {
    if webhooks.is_empty() {
        return format!(
            "{app} has no webhooks. Add one with `paas webhooks:add URL --include deploy,crash`.\n"
        );
    }
    let mut rows = vec![vec![
        "ID".to_owned(),
        "URL".to_owned(),
        "Events".to_owned(),
        "Created".to_owned(),
    ]];
    rows.extend(webhooks.iter().map(|webhook| {
        vec![
            webhook.id.to_string(),
            webhook.url.to_string(),
            events_text(webhook),
            timestamp(webhook.created_at),
        ]
    }));
    format!(
        "{}\n{}",
        style.header(&format!("{app} Webhooks")),
        table(&rows)
    )
}

pub fn add(ctx: &Context, args: &AddArgs) -> anyhow::Result<()> {
    let request = CreateWebhookRequest {
        url: args.url.parse::<WebhookUrl>()?,
        events: parse_include(&args.include)?,
        secret: args
            .secret
            .as_deref()
            .map(str::parse::<WebhookSecret>)
            .transpose()?,
    };
    let name = ctx.app(&args.app)?;
    let client = ctx.client()?;
    let message = format!("Adding webhook to {}", Style::stderr().app(&name));
    let created = action(&message, || {
        let created = client.add_webhook(&name, &request)?;
        let suffix = format!(", id {}", created.webhook.id);
        Ok((created, suffix))
    })?;
    if args.json.json {
        return print_json(&created);
    }
    print!("{}", render_created(&created));
    Ok(())
}

fn render_created(created: &CreatedWebhook) -> String {
    let webhook = &created.webhook;
    let pairs = [
        ("ID", webhook.id.to_string()),
        ("URL", webhook.url.to_string()),
        ("Events", events_text(webhook)),
        ("Secret", created.secret.to_string()),
    ];
    format!(
        "{}Keep the secret: it is not shown again. Check each delivery's Paas-Signature with it.\n",
        key_values(&pairs)
    )
}

pub fn remove(ctx: &Context, RemoveArgs { app, id }: &RemoveArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let message = format!("Removing webhook {id} from {}", Style::stderr().app(&name));
    action(&message, || {
        client.remove_webhook(&name, *id)?;
        Ok(((), String::new()))
    })
}

pub fn deliveries(ctx: &Context, args: &DeliveriesArgs) -> anyhow::Result<()> {
    let name = ctx.app(&args.app)?;
    let query = DeliveriesQuery {
        webhook: args.webhook,
        limit: Some(args.num),
    };
    let attempts = ctx.client()?.webhook_deliveries(&name, &query)?;
    if args.json.json {
        return print_json(&attempts);
    }
    print!("{}", render_deliveries(&name, &attempts, Style::stdout()));
    Ok(())
}

/// `200`, or the reason there was no answer.
fn result_text(result: &AttemptResult) -> String {
    match result {
        AttemptResult::Status(status) => status.to_string(),
        AttemptResult::Error(reason) => reason.clone(),
    }
}

/// `delivered`, `retry in 8 s`, `gave up after 6 attempts`.
fn next_text(attempt: &DeliveryAttempt) -> String {
    match &attempt.next {
        AttemptNext::Delivered => "delivered".to_owned(),
        AttemptNext::RetryInMs(ms) if *ms >= 1000 && ms % 1000 == 0 => {
            format!("retry in {} s", ms / 1000)
        }
        AttemptNext::RetryInMs(ms) if *ms >= 1000 => {
            format!("retry in {:.1} s", *ms as f64 / 1000.0)
        }
        AttemptNext::RetryInMs(ms) => format!("retry in {ms} ms"),
        AttemptNext::GaveUp => format!("gave up after {} attempts", attempt.attempt),
    }
}

fn render_deliveries(app: &str, attempts: &[DeliveryAttempt], style: Style) -> String {
    if attempts.is_empty() {
        return format!("{app} has no webhook deliveries yet.\n");
    }
    let mut rows = vec![vec![
        "Time".to_owned(),
        "Event".to_owned(),
        "Webhook".to_owned(),
        "Attempt".to_owned(),
        "Result".to_owned(),
        "Next".to_owned(),
    ]];
    rows.extend(attempts.iter().map(|attempt| {
        vec![
            timestamp(attempt.at),
            attempt.event.to_string(),
            attempt.webhook.to_string(),
            attempt.attempt.to_string(),
            result_text(&attempt.result),
            next_text(attempt),
        ]
    }));
    format!(
        "{}\n{}",
        style.header(&format!("{app} Webhook Deliveries")),
        table(&rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use paas_api::webhooks::WebhookEvent;

    fn at(second: u32) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc
            .with_ymd_and_hms(2026, 12, 7, 2, 0, second)
            .unwrap()
    }

    fn webhook() -> Webhook {
        Webhook {
            id: 3,
            url: "https://hooks.example.com/paas".parse().unwrap(),
            events: parse_include("deploy,scale").unwrap(),
            created_at: at(0),
        }
    }

    #[test]
    fn webhooks_render_as_a_table() {
        let style = Style { colour: false };
        insta::assert_snapshot!("webhooks_list", render_list("myapp", &[webhook()], style));
        insta::assert_snapshot!("webhooks_list_empty", render_list("myapp", &[], style));
    }

    #[test]
    fn a_new_webhook_shows_its_secret_once() {
        let created = CreatedWebhook {
            webhook: webhook(),
            secret: "0123456789abcdef0123456789abcdef".parse().unwrap(),
        };
        insta::assert_snapshot!("webhooks_add", render_created(&created));
    }

    #[test]
    fn deliveries_say_what_happens_next() {
        let attempt = |second, attempt, result, next| DeliveryAttempt {
            at: at(second),
            webhook: 3,
            delivery: "5f0c".into(),
            event: WebhookEvent::DeploySucceeded,
            attempt,
            result,
            next,
        };
        let refused = || AttemptResult::Error("Connection refused (os error 111)".into());
        let attempts = [
            attempt(7, 3, refused(), AttemptNext::GaveUp),
            attempt(3, 2, refused(), AttemptNext::RetryInMs(4000)),
            attempt(
                1,
                1,
                AttemptResult::Status(503),
                AttemptNext::RetryInMs(2000),
            ),
            attempt(0, 1, AttemptResult::Status(204), AttemptNext::Delivered),
            attempt(
                0,
                1,
                AttemptResult::Status(500),
                AttemptNext::RetryInMs(250),
            ),
            attempt(
                0,
                1,
                AttemptResult::Status(500),
                AttemptNext::RetryInMs(1500),
            ),
        ];
        let style = Style { colour: false };
        insta::assert_snapshot!(
            "webhooks_deliveries",
            render_deliveries("myapp", &attempts, style)
        );
        insta::assert_snapshot!(
            "webhooks_deliveries_empty",
            render_deliveries("myapp", &[], style)
        );
    }
}
