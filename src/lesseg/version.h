#pragma once
#define LESSEG_VERSION "0.1.0"
