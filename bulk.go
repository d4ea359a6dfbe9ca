package imbee

// MaxBulkUsers is how many users one /third_parties/user/bulk call may carry.
const MaxBulkUsers = 1000

// UserSpec is one user to provision, as /third_parties/user/new takes it:
// the integrator's id and, when any device field was given, the device.
type UserSpec struct {
	UniqueID string
	Device   *Device
}

// Registration is what provisioning one user gave: the user with its
// credentials, and whether it existed before (previously_registered).
type Registration struct {
	User    User
	Existed bool
}
