//! Host-side bindings of the `junction:plugin` world, generated from `wit/`.

wasmtime::component::bindgen!({
    path: "../../../wit",
    world: "plugin",
    imports: { default: async | trappable },
    exports: { default: async },
});
