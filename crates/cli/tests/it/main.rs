//! The `camionback-relay` binary as staff and servers run it: a real process, killed, stopped
//! and restarted, with the fakes of CamionBack and of the Cloud API in the test process.

mod commands;
mod crash;
mod data_files;
mod helpers;
mod startup;
mod whatsapp_web;
