from swarmpy.cli import main

main()
