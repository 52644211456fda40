// Pipeline stages (inspect, eval) live here.
namespace mpq {}
