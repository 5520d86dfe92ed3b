//! Integration tests of `cargo xtask record-fixtures`: the recorder against a local upstream, the
//! leak guard, the checker, and replay of the committed lmstudio recordings; `new-provider` on a copy of
//! the wiring files.

mod check;
mod lmstudio;
mod proxy;
mod record;
mod scaffold;
mod toy;
