//! Whether a component can start inside its plugin's memory limit and the
//! host's instance-pool slots. Checked when a plugin is loaded — so at
//! upload, before anything is stored — because a component that can never
//! be instantiated would otherwise fail every execution with a bare
//! instantiation error. Python and JavaScript components start with their
//! interpreter's heap already in linear memory (tens of MiB), which is
//! what makes the memory limit worth checking up front.

use wasmtime::component::Component;

use crate::world::LoadError;

/// The bytes of one WebAssembly page.
const PAGE: u64 = 64 * 1024;
const MIB: u64 = 1024 * 1024;

/// What the instance pool gives one plugin instance; `None` where the host
/// allocates on demand.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSlots {
    /// Linear memories one component instance may have.
    pub memories: u32,
    /// Tables one component instance may have.
    pub tables: u32,
    /// Elements one table may start with.
    pub table_elements: u64,
}

/// Refuses `component` when it cannot start within `memory_limit` bytes
/// or within the pool's slots, saying what to change.
pub(crate) fn check(
    component: &Component,
    memory_limit: usize,
    memory_ceiling: usize,
    pool: Option<PoolSlots>,
) -> Result<(), LoadError> {
    // A component that instantiates an imported module cannot be measured
    // statically; the plugin world has none, and instantiation still checks.
    let Some(needs) = component.resources_required() else {
        return Ok(());
    };
    let largest_memory = needs.max_initial_memory_size.unwrap_or(0) * PAGE;
    if largest_memory > memory_ceiling as u64 {
        return Err(LoadError::DoesNotFit(format!(
            "its linear memory starts at {} MiB, more than this host lets any plugin use ({} MiB)",
            round_up_mib(largest_memory),
            memory_ceiling as u64 / MIB
        )));
    }
    if largest_memory > memory_limit as u64 {
        return Err(LoadError::DoesNotFit(format!(
            "its linear memory starts at {} MiB, more than its memory limit of {} MiB; \
             set `memory-mb` under `limits` in its manifest to at least {} \
             (a Python or JavaScript plugin starts with its interpreter's heap)",
            round_up_mib(largest_memory),
            memory_limit as u64 / MIB,
            round_up_mib(largest_memory) + 16
        )));
    }
    let Some(pool) = pool else {
        return Ok(());
    };
    if needs.num_memories > pool.memories {
        return Err(LoadError::DoesNotFit(format!(
            "it has {} linear memories; this host's instance pool gives a plugin {}",
            needs.num_memories, pool.memories
        )));
    }
    if needs.num_tables > pool.tables {
        return Err(LoadError::DoesNotFit(format!(
            "it has {} tables; this host's instance pool gives a plugin {}",
            needs.num_tables, pool.tables
        )));
    }
    let largest_table = needs.max_initial_table_size.unwrap_or(0);
    if largest_table > pool.table_elements {
        return Err(LoadError::DoesNotFit(format!(
            "a table of it starts with {largest_table} elements; this host's instance pool holds {} per table",
            pool.table_elements
        )));
    }
    Ok(())
}

fn round_up_mib(bytes: u64) -> u64 {
    bytes.div_ceil(MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_whole_mebibytes() {
        assert_eq!(round_up_mib(1), 1);
        assert_eq!(round_up_mib(MIB), 1);
        assert_eq!(round_up_mib(MIB + 1), 2);
    }
}
