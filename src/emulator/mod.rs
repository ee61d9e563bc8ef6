//! Local emulator of the Azure endpoints lightsout uses.
