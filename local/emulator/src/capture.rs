//! A log writer that keeps what it is given, for tests that read the JSON log lines
//! (`shared::telemetry::json_subscriber`) a handler or the runner wrote.

use std::io::Write;
use std::sync::{Arc, Mutex};

use lambda_runtime::tracing::subscriber::fmt::MakeWriter;
use serde_json::Value;

#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }

    /// Every line so far, each parsed as JSON (a line that is not JSON fails the test).
    pub fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.bytes())
            .expect("log lines are UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
