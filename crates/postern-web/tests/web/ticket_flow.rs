//! The Service Desk ticket flow of issue 18 end to end, through the real mail servers: a
//! customer's HTML mail with a table and an inline image becomes a ticket readable on the page;
//! an agent's internal note is mailed to nobody; the agent's answer in Markdown reaches the
//! customer through Postfix into Dovecot with its HTML part rendered.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use postern_core::Outcome;
use postern_outbox::{Sender, SmtpSettings, SmtpTransport, TlsMode};
use postern_store::{InboundSource, Mailbox, OutboxFilter, Role, Visibility};
use postern_testkit::both;

use crate::support::Web;

both!(
    html_ticket_internal_note_and_markdown_answer_through_postfix,
    |db| {
        let Some(server) = postern_testkit::mailserver::shared() else {
            return Ok(());
        };
        let web = Web::new(db).await?;
        let agent = web.user("agent", false).await?;
        let project = web.project("desk", Visibility::Private).await?;
        web.member(&project, &agent, Role::Reporter).await?;
        let mut tx = web.store().begin().await?;
        let mut settings = project.service_desk.clone();
        settings.enabled = true;
        tx.update_service_desk(project.id, &settings).await?;
        tx.commit().await?;

        // The customer's mailbox on the test Dovecot, unique to this run.
        let tag = format!("c{}", &postern_store::new_upload_secret()?[..12]);
        let customer = server.address(&tag);
        let mail = crate::agents::html_ticket_mail(&project)
            .replace("customer@example.org", &customer)
            .replace(
                "<invoice@example.org>",
                &format!("<{tag}@client.example.test>"),
            );
        let outcome = web
            .processor
            .receive(
                mail.as_bytes(),
                Mailbox::ServiceDesk,
                InboundSource::Lmtp,
                None,
            )
            .await?;
        assert_eq!(outcome.outcome, Outcome::Processed, "{outcome:?}");

        let session = web.login("agent").await?;
        let path = format!("/projects/{}/issues/1", project.id);
        let page = web.get(&path, session.cookie()).await;
        assert!(page.body.contains("<td>Tea</td>"), "{}", page.body);
        assert!(page.body.contains("<img src=\"/uploads/"), "{}", page.body);
        assert!(page.body.contains(&customer), "the line names the customer");

        for (body, internal) in [
            ("Tea was 2, ask accounting before answering", true),
            (
                "We have **corrected** the invoice:\n\n| Item | Total |\n|---|---|\n| Tea | 2 |\n",
                false,
            ),
        ] {
            let mut form = vec![("csrf", session.csrf.as_str()), ("body", body)];
            if internal {
                form.push(("internal", "1"));
            }
            let reply = web
                .send(
                    Method::POST,
                    &format!("{path}/notes"),
                    session.cookie(),
                    Some(&form),
                )
                .await;
            assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        }

        // Everything queued for the customer goes out through Postfix.
        let mut tx = web.store().begin().await?;
        let to_customer = tx
            .list_outbox(&OutboxFilter::default())
            .await?
            .into_iter()
            .filter(|m| m.recipients.contains(&customer))
            .count();
        tx.rollback().await?;
        let mut smtp = SmtpSettings::new(
            "127.0.0.1",
            server.smtp_port(),
            TlsMode::None,
            "postern@example.com",
        );
        smtp.timeout = Duration::from_secs(10);
        let sender = Sender::new(web.store().clone(), SmtpTransport::new(smtp)?);
        let report = sender.deliver_due(20).await?;
        assert!(usize::try_from(report.sent)? >= to_customer, "{report:?}");
        let delivered = server
            .wait_for_delivery(
                &customer,
                "To",
                &customer,
                to_customer,
                Duration::from_secs(60),
            )
            .await?;
        assert_eq!(delivered.len(), to_customer, "each mail once");
        let mut answers = 0;
        for raw in &delivered {
            let text = String::from_utf8_lossy(raw);
            assert!(
                !text.contains("accounting"),
                "the internal note was mailed: {text}"
            );
            let mail = mail_parser::MessageParser::default()
                .parse(raw)
                .ok_or("unparsable")?;
            // The thank-you for the ticket arrives too; the answer is the one with its text.
            let text = mail.body_text(0).ok_or("no text part")?;
            if text.contains("We have **corrected** the invoice:") {
                answers += 1;
                assert!(
                    mail.subject()
                        .is_some_and(|s| s.starts_with("Re: Wrong invoice")),
                    "{:?}",
                    mail.subject()
                );
                let html = mail.body_html(0).ok_or("no HTML part")?;
                assert!(html.contains("<strong>corrected</strong>"), "{html}");
                assert!(html.contains(">Tea</td>"), "{html}");
                assert!(!html.contains("**corrected**"), "{html}");
            }
        }
        assert_eq!(answers, 1, "the answer arrives once");
        Ok(())
    }
);
