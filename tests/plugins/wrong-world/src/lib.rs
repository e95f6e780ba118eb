//! Test plugin: a component of another world (an import the host does not
//! offer, no `handle` export), which the host must refuse with a clear error.

wit_bindgen::generate!({
    inline: "
        package other:thing@1.0.0;
        interface telemetry { send: func(data: string); }
        world other {
            import telemetry;
            export run: func() -> string;
        }
    ",
    world: "other",
});

struct Other;

impl Guest for Other {
    fn run() -> String {
        other::thing::telemetry::send("hi");
        "ran".to_owned()
    }
}

export!(Other);
