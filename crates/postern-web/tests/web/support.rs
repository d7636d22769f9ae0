//! A running postern-web on a fresh store, and a small browser-like client for it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use postern_core::content::UploadPolicy;
use postern_core::{Processor, ProcessorConfig, ReceiveOutcome};
use postern_inbox::status::SourceStatus;
use postern_mail::AddressTemplate;
use postern_store::{
    InboundSource, Mailbox, NewProject, NewUser, Project, Role, Store, User, Visibility,
};
use postern_testkit::{BoxError, TestDb};
use postern_web::{WebConfig, WebState, hash_password};
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery";

pub struct Web {
    /// Shared by the instances of one test (see [`Web::another_instance`]).
    pub db: Arc<TestDb>,
    /// This instance's pool.
    pub store: Store,
    pub data: tempfile::TempDir,
    pub processor: Arc<Processor>,
    pub state: WebState,
    pub router: Router,
}

/// One response, body as text (and as sent, for files).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    pub bytes: axum::body::Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first hidden `csrf` field in the page.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("page has a csrf field") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

impl Web {
    pub async fn new(db: TestDb) -> Result<Web, BoxError> {
        Web::with_sources(db, Vec::new()).await
    }

    pub async fn with_sources(
        db: TestDb,
        sources: Vec<Arc<SourceStatus>>,
    ) -> Result<Web, BoxError> {
        let store = db.store.clone();
        Web::instance(Arc::new(db), store, sources)
    }

    /// A second postern instance on the same database: a pool and a data directory of its
    /// own, as another machine running `postern serve` with the same `store.url`.
    pub async fn another_instance(&self) -> Result<Web, BoxError> {
        let options = postern_store::StoreOptions {
            max_connections: 2,
            token_key: Some(self.db.token_key.clone()),
            ..postern_store::StoreOptions::default()
        };
        let store = Store::connect_with(&self.db.url, &options).await?;
        Web::instance(self.db.clone(), store, Vec::new())
    }

    fn instance(
        db: Arc<TestDb>,
        store: Store,
        sources: Vec<Arc<SourceStatus>>,
    ) -> Result<Web, BoxError> {
        let data = tempfile::tempdir()?;
        let config = ProcessorConfig {
            incoming_address: Some(AddressTemplate::new("incoming+%{key}@example.com")),
            service_desk_address: Some(AddressTemplate::new("support+%{key}@example.com")),
            host: "localhost".into(),
            uploads: UploadPolicy {
                directory: data.path().join("uploads"),
                max_bytes: 10 * 1024 * 1024,
            },
            sender_address: "postern@example.com".into(),
            instance_name: "postern".into(),
            reject_notice_window_seconds: 3600,
            auto_mail: postern_core::auto_mail::AutoMailLimits::default(),
            retry: postern_core::RetryPolicy::default(),
            limits: postern_core::MessageLimits::default(),
            quarantine_directory: postern_core::intake::quarantine_directory(data.path()),
            // GitLab's trimmer: these compare with GitLab's results.
            reply_trimming: postern_mail::trim::TrimMode::Gitlab,
            web_url: None,
            reply_key_max_age_days: None,
            sender_authentication: None,
        };
        let repositories = postern_git::Repositories::new(data.path().join("repositories"));
        let processor = Arc::new(Processor::new(store.clone(), repositories, config));
        let mut web_config = WebConfig::new("postern test", "http://127.0.0.1:8080");
        web_config.page_size = 2;
        let state = WebState::new(processor.clone(), sources, web_config);
        let router = postern_web::router(state.clone());
        Ok(Web {
            db,
            store,
            data,
            processor,

            state,
            router,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Sends one request; `cookie` is the `Cookie` header, `form` a urlencoded body.
    /// POSTs `fields` as a form of `session`'s, with its CSRF token first.
    pub async fn post_form(&self, uri: &str, session: &Session, fields: &[(&str, &str)]) -> Reply {
        let mut form = vec![("csrf", session.csrf.as_str())];
        form.extend_from_slice(fields);
        self.send(Method::POST, uri, session.cookie(), Some(&form))
            .await
    }

    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        cookie: Option<&str>,
        form: Option<&[(&str, &str)]>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let body = match form {
            Some(fields) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(urlencode(fields))
            }
            None => Body::empty(),
        };
        self.call(request.body(body).unwrap()).await
    }

    pub async fn call(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    pub async fn get(&self, uri: &str, cookie: Option<&str>) -> Reply {
        self.send(Method::GET, uri, cookie, None).await
    }

    /// A user with a password; `admin` as asked.
    pub async fn user(&self, username: &str, admin: bool) -> Result<User, BoxError> {
        let mut tx = self.store().begin().await?;
        let mut new = NewUser::new(username, username, &format!("{username}@example.com"));
        new.admin = admin;
        let user = tx.create_user(new).await?;
        tx.set_password_hash(user.id, &hash_password(PASSWORD)?)
            .await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn project(&self, path: &str, visibility: Visibility) -> Result<Project, BoxError> {
        let mut tx = self.store().begin().await?;
        let project = tx
            .create_project(NewProject {
                namespace_path: "group".into(),
                path: path.into(),
                name: path.into(),
                visibility,
                default_branch: "main".into(),
            })
            .await?;
        tx.commit().await?;
        Ok(project)
    }

    pub async fn member(&self, project: &Project, user: &User, role: Role) -> Result<(), BoxError> {
        let mut tx = self.store().begin().await?;
        tx.add_member(project.id, user.id, role).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Issue `title` of `project` by `author`, made in the store.
    pub async fn issue(
        &self,
        project: &Project,
        author: &User,
        title: &str,
        description: &str,
    ) -> Result<postern_store::Issue, BoxError> {
        let mut tx = self.store().begin().await?;
        let issue = tx
            .create_issue(postern_store::NewIssue::new(
                project.id,
                author.id,
                title,
                description,
            ))
            .await?;
        tx.commit().await?;
        Ok(issue)
    }

    /// Signs in through the form like a browser; returns the session cookie.
    pub async fn login(&self, username: &str) -> Result<Session, BoxError> {
        let form = self.get("/login", None).await;
        let login_cookie = set_cookie_pair(&form, "postern_login").ok_or("no login cookie")?;
        let csrf = form.csrf();
        let reply = self
            .send(
                Method::POST,
                "/login",
                Some(&login_cookie),
                Some(&[
                    ("csrf", &csrf),
                    ("username", username),
                    ("password", PASSWORD),
                ]),
            )
            .await;
        if reply.status != StatusCode::SEE_OTHER {
            return Err(format!("login failed: {} {}", reply.status, reply.body).into());
        }
        let cookie = set_cookie_pair(&reply, "postern_session").ok_or("no session cookie")?;
        let page = self.get("/profile/tokens", Some(&cookie)).await;
        Ok(Session {
            cookie,
            csrf: page.csrf(),
        })
    }

    /// Receives `raw` on the incoming mailbox.
    pub async fn receive(&self, raw: &str) -> Result<ReceiveOutcome, BoxError> {
        Ok(self
            .processor
            .receive(raw.as_bytes(), Mailbox::Incoming, InboundSource::Lmtp, None)
            .await?)
    }

    /// A new-issue mail from `user` into `project`.
    pub fn new_issue_mail(
        &self,
        project: &Project,
        user: &User,
        subject: &str,
        body: &str,
    ) -> String {
        let key = format!(
            "{}-{}-{}-issue",
            project.full_path_slug, project.id, user.incoming_email_token
        );
        format!(
            "From: {name} <{name}@example.com>\r\nTo: incoming+{key}@example.com\r\n\
             Subject: {subject}\r\nMessage-ID: <{subject_id}@example.com>\r\n\
             Date: Sat, 28 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
            name = user.username,
            subject_id = subject.replace(' ', "-"),
        )
    }
}

/// A signed-in browser.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    pub fn cookie(&self) -> Option<&str> {
        Some(&self.cookie)
    }
}

/// `name=value` of the `Set-Cookie` header for `name`.
pub fn set_cookie_pair(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

pub fn urlencode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
