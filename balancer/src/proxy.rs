//! Accepting connections and copying bytes both ways between a client and its backend.

use tokio::net::{TcpListener, TcpStream};

use crate::pool::Pool;

/// Accepts connections forever, each proxied on its own task.
pub async fn serve(listener: TcpListener, pool: Pool) -> std::io::Result<()> {
    loop {
        let (client, peer) = listener.accept().await?;
        let pool = pool.clone();
        tokio::spawn(async move {
            match pool.connect().await {
                Ok((backend, upstream)) => {
                    tracing::debug!(%peer, %backend, "proxying");
                    if let Err(e) = pipe(client, upstream).await {
                        tracing::debug!(%peer, %backend, error = %e, "connection ended");
                    }
                }
                Err(failures) => {
                    tracing::warn!(%peer, %failures, "no backend accepts; closing the connection");
                }
            }
        });
    }
}

/// Copies both directions until both sides are done.
async fn pipe(mut client: TcpStream, mut upstream: TcpStream) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A backend that answers every connection with its own name.
    async fn named_backend(name: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).await.unwrap();
                s.write_all(name.as_bytes()).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn connections_alternate_between_backends() {
        let backends = vec![named_backend("one").await, named_backend("two").await];
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Pool::new(backends, Duration::from_secs(1))));
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut c = TcpStream::connect(front).await.unwrap();
            c.write_all(b"ping").await.unwrap();
            let mut answer = String::new();
            c.read_to_string(&mut answer).await.unwrap();
            seen.push(answer);
        }
        assert_eq!(seen, ["one", "two", "one", "two"]);
    }
}
