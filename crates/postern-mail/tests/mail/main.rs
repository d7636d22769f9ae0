//! postern-mail on real mail: GitLab's receiver, HTML and reply-trimmer fixtures, the MIME
//! corpus, the reply-complaints corpus and peer trackers' complaints, hostile inputs at each
//! limit, and property tests that nothing panics. No I/O beyond reading `testdata/`.

mod gitlab_fixtures;
mod hostile_inputs;
mod html_fixtures;
mod mime_corpus;
mod never_panics;
mod peer_complaints;
mod reply_complaints;
mod trimmer_fixtures;
