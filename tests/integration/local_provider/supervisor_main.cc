// The supervisor binary the tests hand to LocalProvider, standing in for
// `puddle supervise`.
#include "providers/local/supervisor.h"

int main(int argc, char** argv) { return puddle::local::RunSupervisor(argc, argv); }
