//! Debian's Chromium, headless, driven over the W3C WebDriver protocol by its `chromedriver`:
//! a few blocking calls (open, find, type, click, read, screenshot) over plain HTTP, which is
//! all the dashboard's tests need, in the same blocking style as the other e2e tests.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use base64::Engine;
use serde_json::{Value, json};

use crate::platform::free_port;
use crate::util::wait_for;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The element key of the W3C protocol's element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser window at 1280×800, closed (with its driver) when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::blocking::Client,
}

impl Browser {
    pub fn start() -> Browser {
        assert!(
            Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
            "the dashboard's tests need Debian's chromium and chromium-driver \
             (scripts/test installs them)"
        );
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        wait_for("chromedriver to answer", || {
            http.get(format!("{url}/status"))
                .send()
                .ok()
                .filter(|answer| answer.status().is_success())
        });
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--no-first-run",
                         "--disable-dev-shm-usage", "--window-size=1280,800"],
            },
        }}});
        let created: Value = http
            .post(format!("{url}/session"))
            .json(&capabilities)
            .send()
            .and_then(|answer| answer.json())
            .expect("chromedriver answers a new session");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_owned();
        Browser {
            driver,
            base: format!("{url}/session/{session}"),
            http,
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .and_then(|answer| answer.json())
            .unwrap_or_else(|err| panic!("WebDriver {path}: {err}"));
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The page's visible text.
    pub fn text(&self) -> String {
        self.script("return document.body.innerText;", json!([]))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `body` as a function of `args` in the page and returns what it returns. WebDriver's
    /// scripts run outside the page's Content-Security-Policy.
    pub fn script(&self, body: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": body, "args": args })),
        )
    }

    fn find(&self, css: &str) -> String {
        let found = self.call(
            reqwest::Method::POST,
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    /// Replaces the value of the field `css` with `text`, as typed.
    pub fn fill(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        );
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    /// The value of the cookie `name`, HttpOnly ones included.
    pub fn cookie(&self, name: &str) -> String {
        self.call(reqwest::Method::GET, &format!("/cookie/{name}"), None)["value"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        );
    }

    /// A PNG of the window, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let encoded = self.call(reqwest::Method::GET, "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.http.delete(&self.base).send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
