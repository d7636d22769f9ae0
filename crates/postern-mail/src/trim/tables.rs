//! The data the `postern` trimming mode recognises quoted history, forwards and footers by:
//! client formats crossed with their localised words. Adding a language is adding rows here.
//!
//! Sources for the words: the clients' own localisation files where they are public (Mozilla
//! Thunderbird `messenger.properties` `mailnews.reply_header_*`, `mime.properties`
//! `FORWARDED_MESSAGE`; Gmail's and Apple Mail's strings as they appear in mail), Microsoft's
//! Outlook header labels as listed by the reply parsers that collect them
//! (mailgun/talon `quotations.py`, willdurand/EmailReplyParser `EmailParser.php`,
//! github/email_reply_parser PR #80, alfonsrv/mail-parser-reply `constants.py`,
//! discourse/email_reply_trimmer matchers), and the reports cited in
//! `testdata/reply-complaints/index.tsv`.

/// A word (or words) that ends or carries an attribution line, "On … *wrote*:".
pub(super) struct Verb {
    /// The verb as it appears in the line (case-sensitive: clients write it one way).
    pub word: &'static str,
    /// True when the word is common in prose ("wrote", "schrieb"): the line must then also
    /// hold a date digit or an address, or start with the language's lead word.
    pub needs_context: bool,
}

/// Attribution verbs: (language, client family, verb). The line must end with `:` (or the
/// full-width `：`), optionally after a closing parenthesis or `>`.
pub(super) const ATTRIBUTION_VERBS: &[(&str, &str, Verb)] = &[
    // English: Gmail "On Tue, Mar 5, 2024 at 10:12 AM X <x@y> wrote:", Apple Mail
    // "On 5 Mar 2024, at 10:12, X wrote:", Thunderbird "On 05/03/2024 10:12, X wrote:".
    (
        "en",
        "Gmail/Apple/Thunderbird",
        Verb {
            word: "wrote",
            needs_context: true,
        },
    ),
    // German: Thunderbird "Am 05.03.24 um 10:12 schrieb X:", Gmail "Am Di., … schrieb X <x>:".
    (
        "de",
        "Gmail/Thunderbird",
        Verb {
            word: "schrieb",
            needs_context: true,
        },
    ),
    // French: Gmail "Le mar. 5 mars 2024 à 10:12, X <x> a écrit :", Thunderbird "Le … a écrit :".
    (
        "fr",
        "Gmail/Thunderbird",
        Verb {
            word: "a écrit",
            needs_context: false,
        },
    ),
    // Spanish: Gmail "El mar, 5 mar 2024 a las 10:12, X (<x>) escribió:".
    (
        "es",
        "Gmail/Thunderbird",
        Verb {
            word: "escribió",
            needs_context: false,
        },
    ),
    // Italian: Gmail "Il giorno … X <x> ha scritto:".
    (
        "it",
        "Gmail/Thunderbird",
        Verb {
            word: "ha scritto",
            needs_context: false,
        },
    ),
    // Portuguese: Gmail "Em ter., 5 de mar. de 2024 às 10:12, X <x> escreveu:".
    (
        "pt",
        "Gmail/Thunderbird",
        Verb {
            word: "escreveu",
            needs_context: false,
        },
    ),
    // Dutch: Gmail "Op di 5 mrt 2024 om 10:12 schreef X <x>:".
    (
        "nl",
        "Gmail/Thunderbird",
        Verb {
            word: "schreef",
            needs_context: true,
        },
    ),
    // Swedish, Danish, Norwegian: Gmail "Den tis 5 mars 2024 kl 10:12 skrev X <x>:",
    // "tir. 5. mar. 2024 kl. 10.12 skrev X <x>:".
    (
        "sv/da/no",
        "Gmail/Thunderbird",
        Verb {
            word: "skrev",
            needs_context: true,
        },
    ),
    // Finnish: Gmail "ti 5. maalisk. 2024 klo 10.12 X (x) kirjoitti:".
    (
        "fi",
        "Gmail/Thunderbird",
        Verb {
            word: "kirjoitti",
            needs_context: false,
        },
    ),
    // Polish: Thunderbird "W dniu 5.03.2024 o 10:12, X pisze:", Gmail "… X <x> napisał(a):".
    (
        "pl",
        "Thunderbird",
        Verb {
            word: "pisze",
            needs_context: true,
        },
    ),
    (
        "pl",
        "Gmail",
        Verb {
            word: "napisał",
            needs_context: false,
        },
    ),
    // Czech: Gmail "út 5. 3. 2024 v 10:12 odesílatel X <x> napsal:".
    (
        "cs",
        "Gmail/Thunderbird",
        Verb {
            word: "napsal",
            needs_context: false,
        },
    ),
    // Russian: Thunderbird "05.03.2024 10:12, X пишет:", others "… написал(а):".
    (
        "ru",
        "Thunderbird",
        Verb {
            word: "пишет",
            needs_context: false,
        },
    ),
    (
        "ru",
        "Gmail/Yandex",
        Verb {
            word: "написал",
            needs_context: false,
        },
    ),
    // Ukrainian: Gmail "вт, 5 бер. 2024 р. о 10:12 X <x> пише:".
    (
        "uk",
        "Gmail/Thunderbird",
        Verb {
            word: "пише",
            needs_context: false,
        },
    ),
    (
        "uk",
        "Thunderbird",
        Verb {
            word: "написав",
            needs_context: false,
        },
    ),
    // Turkish: Gmail "… tarihinde X <x> şunu yazdı:".
    (
        "tr",
        "Gmail",
        Verb {
            word: "yazdı",
            needs_context: false,
        },
    ),
    // Hungarian: Gmail "X <x> ezt írta (időpont: 2024. márc. 5., K, 10:12):".
    (
        "hu",
        "Gmail",
        Verb {
            word: "írta",
            needs_context: false,
        },
    ),
    // Greek: Gmail "Στις Τρί 5 Μαρ 2024 … ο/η X <x> έγραψε:".
    (
        "el",
        "Gmail",
        Verb {
            word: "έγραψε",
            needs_context: false,
        },
    ),
    // Chinese: Gmail "X <x> 于2024年3月5日周二 10:12写道：", traditional "…寫道：".
    (
        "zh-Hans",
        "Gmail",
        Verb {
            word: "写道",
            needs_context: false,
        },
    ),
    (
        "zh-Hant",
        "Gmail",
        Verb {
            word: "寫道",
            needs_context: false,
        },
    ),
    // Japanese: Thunderbird/Outlook "X さんは書きました:", Becky! "…のメッセージ:".
    (
        "ja",
        "Thunderbird/Outlook",
        Verb {
            word: "書きました",
            needs_context: false,
        },
    ),
    // Korean: Gmail "2024년 3월 5일 (화) 오전 10:12, X <x>님이 작성:".
    (
        "ko",
        "Gmail",
        Verb {
            word: "님이 작성",
            needs_context: false,
        },
    ),
    // Romanian: Gmail "În mar., 5 mar. 2024 la 10:12, X <x> a scris:".
    (
        "ro",
        "Gmail",
        Verb {
            word: "a scris",
            needs_context: false,
        },
    ),
];

/// Words an attribution line starts with in each language (used when a `needs_context` verb
/// comes without a date digit or address).
pub(super) const ATTRIBUTION_LEADS: &[&str] = &[
    "On ", "Am ", "Le ", "El ", "Il ", "Em ", "Op ", "Den ", "W dniu ", "În ",
];

/// Role of an Outlook-style header label.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Role {
    From,
    Sent,
    To,
    Cc,
    Subject,
    /// Reply-To and other labels that only ever appear inside a block.
    Other,
}

/// Outlook (desktop and web), Apple Mail and Thunderbird header-block labels:
/// (language, role, label). Outlook writes `Label: value` lines under a rule of underscores
/// or under "-----Original Message-----"; the labels follow the client's language.
pub(super) const HEADER_LABELS: &[(&str, Role, &str)] = &[
    ("en", Role::From, "From"),
    ("en", Role::Sent, "Sent"),
    ("en", Role::Sent, "Date"),
    ("en", Role::To, "To"),
    ("en", Role::Cc, "Cc"),
    ("en", Role::Subject, "Subject"),
    ("en", Role::Other, "Reply-To"),
    ("en", Role::Other, "Reply to"),
    ("en", Role::Other, "Bcc"),
    ("de", Role::Other, "Antwort an"),
    ("de", Role::Cc, "Kopie"),
    ("fr", Role::Other, "Répondre à"),
    ("fr", Role::Cc, "Copie"),
    ("fr", Role::From, "Expéditeur"),
    ("fr", Role::To, "Destinataire"),
    ("es", Role::Other, "Responder a"),
    ("it", Role::Other, "Risposta"),
    ("it", Role::Cc, "Cc"),
    ("nl", Role::Other, "Beantwoorden - Aan"),
    ("de", Role::From, "Von"),
    ("de", Role::Sent, "Gesendet"),
    ("de", Role::Sent, "Datum"),
    ("de", Role::To, "An"),
    ("de", Role::Subject, "Betreff"),
    ("fr", Role::From, "De"),
    ("fr", Role::Sent, "Envoyé"),
    ("fr", Role::To, "À"),
    ("fr", Role::To, "Pour"),
    ("fr", Role::Subject, "Objet"),
    ("fr", Role::Subject, "Sujet"),
    ("es", Role::Sent, "Enviado el"),
    ("es", Role::Sent, "Enviado"),
    ("es", Role::Sent, "Fecha"),
    ("es/pt", Role::To, "Para"),
    ("es", Role::Subject, "Asunto"),
    ("it", Role::From, "Da"),
    ("it", Role::Sent, "Inviato"),
    ("it/pl/pt", Role::Sent, "Data"),
    ("it", Role::To, "A"),
    ("it", Role::Subject, "Oggetto"),
    ("pt", Role::Subject, "Assunto"),
    ("nl", Role::From, "Van"),
    ("nl", Role::Sent, "Verzonden"),
    ("nl", Role::To, "Aan"),
    ("nl", Role::Subject, "Onderwerp"),
    ("sv", Role::From, "Från"),
    ("sv", Role::Sent, "Skickat"),
    ("sv", Role::To, "Till"),
    ("sv", Role::Subject, "Ämne"),
    ("da/no", Role::From, "Fra"),
    ("da/no", Role::Sent, "Sendt"),
    ("da/no", Role::To, "Til"),
    ("da/no", Role::Subject, "Emne"),
    ("fi", Role::From, "Lähettäjä"),
    ("fi", Role::Sent, "Lähetetty"),
    ("fi", Role::To, "Vastaanottaja"),
    ("fi", Role::Subject, "Aihe"),
    ("pl", Role::From, "Od"),
    ("pl", Role::Sent, "Wysłano"),
    ("pl", Role::To, "Do"),
    ("pl", Role::Cc, "DW"),
    ("pl", Role::Subject, "Temat"),
    ("cs", Role::From, "Od"),
    ("cs", Role::Sent, "Odesláno"),
    ("cs", Role::To, "Komu"),
    ("cs", Role::Subject, "Předmět"),
    ("ru", Role::From, "От"),
    ("ru", Role::Sent, "Отправлено"),
    ("ru", Role::Sent, "Дата"),
    ("ru", Role::To, "Кому"),
    ("ru", Role::Cc, "Копия"),
    ("ru", Role::Subject, "Тема"),
    ("uk", Role::From, "Від"),
    ("uk", Role::Sent, "Надіслано"),
    ("tr", Role::From, "Kimden"),
    ("tr", Role::Sent, "Gönderildi"),
    ("tr", Role::Sent, "Tarih"),
    ("tr", Role::To, "Kime"),
    ("tr", Role::Subject, "Konu"),
    ("hu", Role::From, "Feladó"),
    ("hu", Role::Sent, "Elküldve"),
    ("hu", Role::Sent, "Dátum"),
    ("hu", Role::To, "Címzett"),
    ("hu", Role::Subject, "Tárgy"),
    ("el", Role::From, "Από"),
    ("el", Role::Sent, "Στάλθηκε"),
    ("el", Role::To, "Προς"),
    ("el", Role::Subject, "Θέμα"),
    ("ja", Role::From, "差出人"),
    ("ja", Role::Sent, "送信日時"),
    ("ja", Role::Sent, "日付"),
    ("ja", Role::To, "宛先"),
    ("ja", Role::Subject, "件名"),
    ("zh-Hans", Role::From, "发件人"),
    ("zh-Hans", Role::Sent, "发送时间"),
    ("zh-Hans", Role::Sent, "日期"),
    ("zh-Hans", Role::To, "收件人"),
    ("zh-Hans", Role::Cc, "抄送"),
    ("zh-Hans", Role::Subject, "主题"),
    ("zh-Hant", Role::From, "寄件者"),
    ("zh-Hant", Role::Sent, "寄件日期"),
    ("zh-Hant", Role::To, "收件者"),
    ("zh-Hant", Role::Cc, "副本"),
    ("zh-Hant", Role::Subject, "主旨"),
    ("ko", Role::From, "보낸 사람"),
    ("ko", Role::Sent, "보낸 날짜"),
    ("ko", Role::To, "받는 사람"),
    ("ko", Role::Cc, "참조"),
    ("ko", Role::Subject, "제목"),
    ("ro", Role::Sent, "Trimis"),
    ("ro", Role::To, "Către"),
    ("ro", Role::Subject, "Subiect"),
];

/// Subject prefixes that mark a forward in the header block under a marker (Outlook writes
/// the same block for replies and forwards; only the subject tells them apart).
pub(super) const FORWARD_SUBJECT_PREFIXES: &[&str] = &[
    "fw:",
    "fwd:",    // en
    "wg:",     // de (Weitergeleitet)
    "tr:",     // fr (Transfert)
    "rv:",     // es (Reenviar)
    "enc:",    // pt (Encaminhar)
    "i:",      // it (Inoltro)
    "doorst:", // nl
    "vb:",     // sv
    "vl:",     // fi
    "pd:",     // pl (Prześlij dalej)
    "pfw:",    // lt/lv clients
    "přep:",   // cs
    "пересл:", // ru
    "ilt:",
    "i̇lt:",   // tr
    "tov:",   // hu
    "προώθ:", // el
    "转发:",
    "转发：", // zh-Hans
    "轉寄:",
    "轉寄：", // zh-Hant
    "転送:",
    "転送：", // ja
    "전달:",  // ko
];

/// Phrases of forward markers: `---------- Forwarded message ---------` (Gmail),
/// `-------- Forwarded Message --------` (Thunderbird), `Begin forwarded message:` (Apple
/// Mail), and their translations. Compared lower-cased, without the surrounding dashes,
/// asterisks, blanks and trailing colon.
pub(super) const FORWARD_PHRASES: &[&str] = &[
    "forwarded message",
    "begin forwarded message",
    "weitergeleitete nachricht",
    "anfang der weitergeleiteten nachricht",
    "message transféré",
    "début du message réexpédié",
    "début du message transféré",
    "mensaje reenviado",
    "inicio del mensaje reenviado",
    "messaggio inoltrato",
    "inizio messaggio inoltrato",
    "mensagem encaminhada",
    "início da mensagem reencaminhada",
    "doorgestuurd bericht",
    "begin doorgestuurd bericht",
    "vidarebefordrat meddelande",
    "vidarebefordrat mejl",
    "videresendt meddelelse",
    "videresendt melding",
    "välitetty viesti",
    "przekazana wiadomość",
    "wiadomość przekazana dalej",
    "přeposlaná zpráva",
    "пересылаемое сообщение",
    "пересланное сообщение",
    "iletilen ileti",
    "továbbított üzenet",
    "προωθημένο μήνυμα",
    "转发的邮件",
    "轉寄的郵件",
    "転送されたメッセージ",
    "전달된 메시지",
    "mesaj redirecționat",
];

/// Phrases of "-----Original Message-----" markers (Outlook, Lotus, QQ Mail …), same form.
pub(super) const ORIGINAL_PHRASES: &[&str] = &[
    "original message",
    "reply message",
    "ursprüngliche nachricht",
    "message d'origine",
    "message d’origine",
    "mensaje original",
    "messaggio originale",
    "mensagem original",
    "oorspronkelijk bericht",
    "ursprungligt meddelande",
    "originalmeddelande",
    "oprindelig meddelelse",
    "opprinnelig melding",
    "alkuperäinen viesti",
    "wiadomość oryginalna",
    "oryginalna wiadomość",
    "původní zpráva",
    "исходное сообщение",
    "оригинальное сообщение",
    "özgün ileti",
    "orijinal ileti",
    "eredeti üzenet",
    "αρχικό μήνυμα",
    "原始邮件",
    "原始郵件",
    "元のメッセージ",
    "원본 메시지",
    "mesaj original",
];

/// Mobile and webmail footers: (language, start, end). A line is a footer when it is exactly
/// `start`, then at most [`super::postern::MAX_FOOTER_TAIL_CHARS`] characters without
/// sentence punctuation, then `end` — so "Sent from my iPhone" is one, and "From my tests,
/// the leak…" is not.
pub(super) const FOOTERS: &[(&str, &str, &str)] = &[
    ("en", "Sent from my ", ""),
    ("en", "Sent from ", ""),
    ("en", "Sent with ", ""),
    ("en", "Sent via ", ""),
    ("en", "Sent by ", ""),
    ("en", "From my ", ""),
    ("en", "Get Outlook for ", ""),
    ("de", "Von meinem ", " gesendet"),
    ("de", "Gesendet von meinem ", ""),
    ("fr", "Envoyé de mon ", ""),
    ("fr", "Envoyé depuis mon ", ""),
    ("fr", "Envoyé depuis ", ""),
    ("es", "Enviado desde mi ", ""),
    ("pt", "Enviado do meu ", ""),
    ("pt", "Enviado do ", ""),
    ("it", "Inviato da ", ""),
    ("it", "Inviato dal mio ", ""),
    ("nl", "Verzonden met ", ""),
    ("nl", "Verstuurd vanaf mijn ", ""),
    ("nl", "Verzonden vanaf mijn ", ""),
    ("sv", "Skickat från min ", ""),
    ("da/no", "Sendt fra min ", ""),
    ("fi", "Lähetetty ", ""),
    ("pl", "Wysłane z mojego ", ""),
    ("pl", "Wysłano z ", ""),
    ("ru", "Отправлено с ", ""),
    ("zh-Hans", "发自我的", ""),
    ("zh-Hans", "从我的", "发送"),
    ("zh-Hant", "從我的", "傳送"),
    ("zh-Hant", "從我的 ", " 傳送"),
    ("ja", "", "から送信"),
    ("en", "", " from mobile"),
    ("de", "Diese Nachricht wurde von ", " gesendet"),
];
