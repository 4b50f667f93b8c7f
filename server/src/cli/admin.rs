//! `classchat admin <task>`: the administrator's tasks on the server itself.

use crate::basics::now_ms;
use crate::store::teachers::Audit;

/// `classchat admin …`: tasks the operator runs on the server. `create-token` prints an
/// administrator token once; the database keeps only its digest.
pub async fn command(database_url: &str, task: &super::AdminCommand) -> anyhow::Result<()> {
    use super::AdminCommand;
    match task {
        AdminCommand::CreateToken { name } => {
            let name = name.trim();
            anyhow::ensure!(
                !name.is_empty() && name.chars().count() <= 100,
                "--name: give the token a name of 1 to 100 characters"
            );
            let store = crate::store::Store::connect(database_url.trim()).await?;
            let t = crate::teachers::new_token();
            let id = crate::teachers::new_id('k');
            let audit = Audit {
                actor: "classchat admin create-token",
                address: None,
                now_ms: now_ms(),
            };
            store
                .create_token(&id, &t.digest, &t.prefix, name, None, audit)
                .await?;
            store.close().await;
            // The one place a token is ever printed: on the operator's own terminal.
            println!("{}", t.token);
            eprintln!(
                "classchat admin: administrator token {id} ({name:?}) created; it is shown only this once"
            );
            Ok(())
        }
    }
}
