// The dashboard's routes. Hash history keeps them after "#", so they never collide with the service's own paths
// (/requests is both a view here and an API there) and the server only ever serves one page.
import { createHashHistory, createRootRoute, createRoute, createRouter } from "@tanstack/react-router";
import { NotFound, Shell } from "./layout.tsx";
import { overviewSearch, requestsSearch } from "./search.ts";
import { KeysView } from "./views/keys.tsx";
import { OverviewView } from "./views/overview.tsx";
import { PlaygroundView } from "./views/playground.tsx";
import { RequestDetailView } from "./views/request-detail.tsx";
import { RequestsView } from "./views/requests.tsx";
import { UsersView } from "./views/users.tsx";

const rootRoute = createRootRoute({ component: Shell, notFoundComponent: NotFound });

const overviewRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/",
  validateSearch: overviewSearch,
  component: OverviewView,
});

const requestsRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/requests",
  validateSearch: requestsSearch,
  component: RequestsView,
});

const requestDetailRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/requests/$id",
  component: RequestDetailView,
});

const playgroundRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/playground",
  component: PlaygroundView,
});
const keysRoute = createRoute({ getParentRoute: () => rootRoute, path: "/keys", component: KeysView });
const usersRoute = createRoute({ getParentRoute: () => rootRoute, path: "/users", component: UsersView });

const routeTree = rootRoute.addChildren([
  overviewRoute,
  requestsRoute,
  requestDetailRoute,
  playgroundRoute,
  keysRoute,
  usersRoute,
]);

export const router = createRouter({ routeTree, history: createHashHistory(), scrollRestoration: true });

declare module "@tanstack/react-router" {
  interface Register {
    router: typeof router;
  }
}
