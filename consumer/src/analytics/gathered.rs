//! The output-topic messages gathered during one publish interval: the latest value of each
//! topic and key, in the order the keys first came. A later value of a key replaces the one
//! gathered, so a vehicle that reported in every batch of the interval is produced once.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::publish::Outgoing;

/// Messages waiting for the end of the interval.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Position in `messages` of each (topic, key).
    index: HashMap<(String, String), usize>,
    messages: Vec<Outgoing>,
}

impl Gathered {
    /// Adds `message`; when one of the same topic and key is gathered already, `message`'s
    /// value replaces it (the aggregates only grow, the later value is the current one) and
    /// `true` is returned.
    pub fn add(&mut self, message: Outgoing) -> bool {
        match self
            .index
            .entry((message.topic.clone(), message.key.clone()))
        {
            Entry::Occupied(at) => {
                self.messages[*at.get()].value = message.value;
                true
            }
            Entry::Vacant(at) => {
                at.insert(self.messages.len());
                self.messages.push(message);
                false
            }
        }
    }

    /// Takes every gathered message, leaving nothing.
    pub fn take(&mut self) -> Vec<Outgoing> {
        self.index.clear();
        std::mem::take(&mut self.messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(topic: &str, key: &str, value: &str) -> Outgoing {
        Outgoing {
            topic: topic.into(),
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn the_latest_value_of_a_key_stays_in_the_place_of_its_first() {
        let mut g = Gathered::default();
        assert!(!g.add(m("summary", "VIN1", "1")));
        assert!(!g.add(m("summary", "VIN2", "1")));
        assert!(g.add(m("summary", "VIN1", "2")));
        // The same key on another topic is another message.
        assert!(!g.add(m("metrics", "VIN1", "x")));
        assert!(g.add(m("summary", "VIN1", "3")));
        assert_eq!(
            g.take(),
            vec![
                m("summary", "VIN1", "3"),
                m("summary", "VIN2", "1"),
                m("metrics", "VIN1", "x"),
            ]
        );
        assert!(g.take().is_empty());
        assert!(!g.add(m("summary", "VIN1", "4")), "taking forgets the keys");
        assert_eq!(g.take(), vec![m("summary", "VIN1", "4")]);
    }
}
