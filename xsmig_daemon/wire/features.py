"""Server feature bits: the value at ring-page offset 2064 and in DOMAIN_DATA's features."""

FEATURE_RECONNECTION = 1
FEATURE_ERROR = 2
FEATURE_WATCHDEPTH = 4
FEATURE_DOMID_ANY = 8
#: What current Xen offers a domain (and what the mock offers).
SUPPORTED_FEATURES = FEATURE_ERROR | FEATURE_WATCHDEPTH | FEATURE_DOMID_ANY
