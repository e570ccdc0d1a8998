//! Running a sweep's cells: one cell in this process (`cell`, what every executor starts), a
//! queue of them on this machine (`local`), or a Slurm array that the scheduler runs (`slurm`).
pub mod cell;
pub mod local;
pub mod slurm;
