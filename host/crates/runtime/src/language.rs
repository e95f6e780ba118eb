//! Which language a component was written in, read from what its
//! toolchain left in it: the `producers` custom sections (componentize-js
//! declares `language: JavaScript`, wit-bindgen's Rust generator names
//! itself under `processed-by`) and the component's names for its core
//! modules (componentize-py links CPython as `libpython3.*.so`). Nothing
//! here runs or compiles the component.

use junction_core::Language;
use wasmparser::{ComponentName, KnownCustom, Parser, Payload};

/// The language `bytes` was written in, when its toolchain says.
pub fn component_language(bytes: &[u8]) -> Option<Language> {
    let mut seen = Seen::default();
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(Payload::CustomSection(section)) = payload else {
            continue;
        };
        match section.as_known() {
            KnownCustom::Producers(producers) => {
                for field in producers.into_iter().flatten() {
                    for value in field.values.into_iter().flatten() {
                        seen.producer(field.name, value.name);
                    }
                }
            }
            KnownCustom::ComponentName(names) => {
                for name in names.into_iter().flatten() {
                    if let ComponentName::CoreModules(modules) = name {
                        for naming in modules.into_iter().flatten() {
                            seen.core_module(naming.name);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    seen.language()
}

#[derive(Default)]
struct Seen {
    javascript: bool,
    python: bool,
    rust_bindings: bool,
}

impl Seen {
    fn producer(&mut self, field: &str, name: &str) {
        match (field, name) {
            ("language", "JavaScript") => self.javascript = true,
            ("language", "Python") => self.python = true,
            ("processed-by", "ComponentizeJS") => self.javascript = true,
            ("processed-by", "componentize-py") => self.python = true,
            ("processed-by", "wit-bindgen-rust") => self.rust_bindings = true,
            _ => {}
        }
    }

    fn core_module(&mut self, name: &str) {
        if name.starts_with("libpython3") {
            self.python = true;
        }
    }

    /// An interpreter's marks win over Rust's: both interpreters carry
    /// support code built with Rust.
    fn language(&self) -> Option<Language> {
        if self.javascript {
            Some(Language::JavaScript)
        } else if self.python {
            Some(Language::Python)
        } else if self.rust_bindings {
            Some(Language::Rust)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_without_marks_has_no_language() {
        // The preamble of an empty component: magic, version 0x0d, layer 1.
        let component = b"\0asm\x0d\0\x01\0";
        assert_eq!(component_language(component), None);
        assert_eq!(component_language(b"not wasm"), None);
    }
}
