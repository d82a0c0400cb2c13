//! A named thread fed by a channel that lives as long as its handle:
//! dropping the handle closes the channel (the thread's loop ends) and waits
//! for the thread. Used by the store's writer and WAL checkpointer and by
//! the server's housekeeping.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;

/// The handle of a background thread reading messages of type `T`.
pub struct Background<T> {
    sender: Option<Sender<T>>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Background<T> {
    /// Starts `body` on a thread named `name` with the receiving end of the channel.
    pub fn spawn(name: &str, body: impl FnOnce(Receiver<T>) + Send + 'static) -> std::io::Result<Background<T>> {
        let (sender, receiver) = channel::<T>();
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || body(receiver))?;
        Ok(Background { sender: Some(sender), thread: Some(thread) })
    }

    /// The sending end of the thread's channel.
    pub fn sender(&self) -> Option<&Sender<T>> {
        self.sender.as_ref()
    }
}

impl<T> Drop for Background<T> {
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(t) = self.thread.take() {
            // The last handle may be dropped on the thread itself (a job holding
            // the store): it ends on its own once the channel is closed.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}
