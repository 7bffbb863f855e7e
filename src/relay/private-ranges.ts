// Implements docs/protocol.md §7: the destinations an exit refuses unless its operator allows them,
// written as policy lines so they can be published in a descriptor.
export const PRIVATE_REJECT_LINES: string[] = [
  'reject 0.0.0.0/8:*',
  'reject 10.0.0.0/8:*',
  'reject 100.64.0.0/10:*',
  'reject 127.0.0.0/8:*',
  'reject 169.254.0.0/16:*',
  'reject 172.16.0.0/12:*',
  'reject 192.168.0.0/16:*',
  'reject 224.0.0.0/4:*',
  'reject 240.0.0.0/4:*',
  'reject [::]/128:*',
  'reject [::1]/128:*',
  'reject [fc00::]/7:*',
  'reject [fe80::]/10:*',
  'reject [ff00::]/8:*',
];
