//! ZooKeeper readiness: `ruok` must answer `imok` and `srvr` must show a mode.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ProbeError;

async fn four_letter_word(addr: SocketAddr, word: &str) -> Result<String, ProbeError> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(word.as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .map_err(|_| ProbeError::new(format!("`{word}` to {addr} timed out")))?
        .map_err(|e| ProbeError::new(format!("`{word}` to {addr}: {e}")))
}

/// Ok with the server's mode (`standalone`, `leader`, ...) when ZooKeeper at `addr` is ready.
pub async fn zookeeper_ruok(addr: SocketAddr) -> Result<String, ProbeError> {
    let answer = four_letter_word(addr, "ruok").await?;
    if answer.trim() != "imok" {
        return Err(ProbeError::new(format!(
            "`ruok` answered {answer:?}, expected \"imok\""
        )));
    }
    let srvr = four_letter_word(addr, "srvr").await?;
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode:"))
        .map(|m| m.trim().to_owned())
        .ok_or_else(|| ProbeError::new(format!("`srvr` shows no mode: {srvr:?}")))
}
